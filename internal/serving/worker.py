# Hangar serving worker: one Python process of a real-time inference service.
#
# Started by internal/serving as `python -u -c <this file> ENTRY_SCRIPT` with
# the service's source directory as its working directory. It imports the
# entry script once, calls init() once, then answers run() requests framed on
# its stdin/stdout pipes:
#
#   frame = 4-byte big-endian payload length, 1 kind byte, payload
#   in:  b"R" request body (UTF-8)
#   out: b"I" init returned, b"E" init failed (JSON {stage,type,message,traceback}),
#        b"O" json.dumps(run(...), allow_nan=False) encoded as UTF-8 (bytes
#             results are decoded as UTF-8 first, strictly),
#        b"U" run() failed, or its result is not JSON-serialisable (stage
#             "serialize") or is bytes that are not UTF-8 (stage "decode"):
#             JSON {stage,type,message,traceback}
#
# The protocol pipes are moved to private descriptors before user code runs:
# fd 0 becomes /dev/null and fd 1 a copy of stderr, so print() and C
# libraries writing to stdout end up in the service log and cannot corrupt
# frames. EOF on the request pipe ends the worker.
import os
import sys


def _main():
    import importlib.util
    import json
    import struct
    import traceback

    rfd = os.dup(0)
    wfd = os.dup(1)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    os.dup2(2, 1)
    sys.stdout = sys.stderr

    header = struct.Struct(">IB")
    pack = header.pack
    unpack = header.unpack
    write = os.write

    def send(kind, data):
        buf = pack(len(data), kind) + data
        n = write(wfd, buf)
        if n != len(buf):
            view = memoryview(buf)[n:]
            while view:
                view = view[write(wfd, view):]

    def failure(stage, exc, skip_frames):
        tb = exc.__traceback__
        for _ in range(skip_frames):
            if tb is not None and tb.tb_next is not None:
                tb = tb.tb_next
        return json.dumps({
            "stage": stage,
            "type": type(exc).__name__,
            "message": str(exc),
            "traceback": "".join(traceback.format_exception(type(exc), exc, tb)),
        }).encode()

    entry = sys.argv[1]
    src = os.getcwd()
    sys.path[0] = src
    path = os.path.abspath(entry)
    script_dir = os.path.dirname(path)
    if script_dir != src:
        sys.path.insert(1, script_dir)
    name = os.path.splitext(os.path.basename(entry))[0]

    stage = "import"
    try:
        spec = importlib.util.spec_from_file_location(name, path)
        if spec is None:
            raise ImportError("cannot import %s: not a Python source file" % entry)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
        run = getattr(module, "run", None)
        if not callable(run):
            raise AttributeError("%s defines no run(raw_data) function" % entry)
        init = getattr(module, "init", None)
        if init is not None:
            stage = "init"
            init()
    except BaseException as exc:
        send(0x45, failure(stage, exc, 1))  # E
        return 1
    send(0x49, b"")  # I

    dumps = json.dumps
    inp = open(rfd, "rb", buffering=1 << 16)
    read = inp.read
    while True:
        head = read(5)
        if len(head) < 5:
            return 0
        size, _ = unpack(head)
        data = read(size) if size else b""
        if len(data) < size:
            return 0
        try:
            result = run(data.decode("utf-8", "replace"))
        except Exception as exc:
            send(0x55, failure("run", exc, 1))  # U
            continue
        if isinstance(result, (bytes, bytearray, memoryview)):
            try:
                result = bytes(result).decode("utf-8")
            except UnicodeDecodeError as exc:
                send(0x55, failure("decode", exc, 1))  # U
                continue
        try:
            # NaN and Infinity are not JSON: refuse them rather than send
            # a body that JSON parsers reject.
            out = dumps(result, allow_nan=False).encode()
        except Exception as exc:
            send(0x55, failure("serialize", exc, 1))  # U
            continue
        send(0x4F, out)  # O


try:
    _code = _main()
except BrokenPipeError:
    _code = 0  # the front end went away
sys.exit(_code)
