"""KServe's side of benchmarks/serving_load.py: a kserve.Model around onnxruntime (one thread).

python kserve_server.py MODEL.onnx PORT
"""

import sys
import uuid

import numpy as np
import onnxruntime as ort
from kserve import InferOutput, InferRequest, InferResponse, Model, ModelServer


class Digits(Model):
    def __init__(self, name: str, path: str) -> None:
        super().__init__(name)
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        self.session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
        self.names = [output.name for output in self.session.get_outputs()]
        self.ready = True

    def predict(self, payload: InferRequest, headers=None) -> InferResponse:
        x = payload.inputs[0].as_numpy().astype(np.float32)
        outputs = self.session.run(None, {self.session.get_inputs()[0].name: x})
        datatypes = {np.dtype(np.float32): "FP32", np.dtype(np.int64): "INT64", np.dtype(np.float64): "FP64"}
        tensors = []
        for name, value in zip(self.names, outputs):
            tensor = InferOutput(name=name, shape=list(value.shape), datatype=datatypes[value.dtype])
            tensor.set_data_from_numpy(value, binary_data=False)
            tensors.append(tensor)
        return InferResponse(model_name=self.name, infer_outputs=tensors, response_id=payload.id or str(uuid.uuid4()))


if __name__ == "__main__":
    ModelServer(http_port=int(sys.argv[2]), workers=1, enable_grpc=False).start([Digits("digits_cnn", sys.argv[1])])
