"""A dns-01 hook (certops.acme's executable-hook contract) backed by pebble-challtestsrv's
management API: ``challtestsrv_hook.py add|del NAME VALUE`` with JSON on stdin.
The API URL comes from $CHALLTESTSRV_URL. Standard library only, like a user's hook would be."""

import json
import os
import sys
import urllib.request


def call(path: str, body: dict) -> None:
    request = urllib.request.Request(os.environ["CHALLTESTSRV_URL"] + path, data=json.dumps(body).encode(),
                                     method="POST")
    with urllib.request.urlopen(request, timeout=10):
        pass


def main() -> int:
    action, name, value = sys.argv[1:4]
    stdin = json.load(sys.stdin)
    if stdin != {"action": action, "name": name, "value": value}:
        print(f"stdin does not match the arguments: {stdin}", file=sys.stderr)
        return 2
    if action == "add":
        call("/set-txt", {"host": name + ".", "value": value})
    elif action == "del":
        call("/clear-txt", {"host": name + "."})
    else:
        print(f"unknown action {action}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
