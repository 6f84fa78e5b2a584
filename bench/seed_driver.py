# Feeds one notification document per line of a file to the seed's handler, as Lambda would
# (one invocation per event), with logging going where CloudWatch would get it (a file).
import json
import logging
import sys

logging.basicConfig(filename=sys.argv[2], level=logging.INFO)
sys.path.insert(0, __import__('os').path.dirname(__file__))
import seed_delete_sync  # noqa: E402

with open(sys.argv[1]) as f:
    for line in f:
        seed_delete_sync.lambda_handler(json.loads(line), None)
