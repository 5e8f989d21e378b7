"""The stack's floor for benchmarks/serving_load.py: Starlette + uvicorn parsing the same JSON body
and answering a fixed JSON, no model.   python bare_starlette.py PORT"""

import json
import sys

import uvicorn
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route

ANSWER = {"model_name": "digits_cnn", "outputs": [{"name": "label", "datatype": "INT64", "shape": [1], "data": [0]}]}


async def infer(request):
    json.loads(await request.body())
    return JSONResponse(ANSWER)


async def live(request):
    return JSONResponse({"live": True})


app = Starlette(routes=[Route("/v2/models/digits_cnn/infer", infer, methods=["POST"]), Route("/v2/health/live", live)])

if __name__ == "__main__":
    uvicorn.run(app, port=int(sys.argv[1]), log_level="warning", access_log=False)
