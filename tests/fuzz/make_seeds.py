#!/usr/bin/env python3
"""Writes the committed seed corpora of the fuzz harnesses into tests/fuzz/corpus/<harness>/.

Each harness gets a few small valid inputs (so the fuzzer starts deep inside the parser) and a
few invalid ones (each a distinct rejection path). Standard library only; run it again after
changing a harness's input layout:  python3 tests/fuzz/make_seeds.py
"""
import gzip
import json
import os
import shutil
import struct
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
CORPUS = os.path.join(HERE, "corpus")
EXAMPLES = os.path.join(HERE, "..", "..", "examples")


def write(harness, name, data):
    folder = os.path.join(CORPUS, harness)
    os.makedirs(folder, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(folder, name), "wb") as f:
        f.write(data)


# --- IDX: [num_classes - 1][view][u32 LE images length][images][labels] --------------------------

def idx_images(count, rows, cols, fill=None):
    head = bytes([0, 0, 8, 3]) + struct.pack(">III", count, rows, cols)
    pixels = fill if fill is not None else bytes((i * 37) % 256 for i in range(count * rows * cols))
    return head + pixels


def idx_labels(labels):
    return bytes([0, 0, 8, 1]) + struct.pack(">I", len(labels)) + bytes(labels)


def idx_input(images, labels, num_classes=10, view=0):
    return bytes([num_classes - 1, view]) + struct.pack("<I", len(images)) + images + labels


def make_idx():
    images = idx_images(2, 3, 4)
    labels = idx_labels([3, 9])
    write("idx", "valid_raw", idx_input(images, labels))
    write("idx", "valid_gzip_permuted",
          idx_input(gzip.compress(images, mtime=0), gzip.compress(labels, mtime=0), view=3))
    write("idx", "valid_cols_one_image", idx_input(idx_images(1, 5, 2), idx_labels([1]), 2, 1))
    write("idx", "valid_pixels_two_gzip_members",
          idx_input(gzip.compress(images[:10], mtime=0) + gzip.compress(images[10:], mtime=0),
                    labels, view=2))
    write("idx", "bad_magic", idx_input(b"\x01\x02\x08\x03" + images[4:], labels))
    write("idx", "bad_element_type", idx_input(images[:2] + b"\x0d" + images[3:], labels))
    write("idx", "truncated_data", idx_input(images[:-3], labels))
    write("idx", "trailing_bytes", idx_input(images + b"\x00\x01", labels))
    write("idx", "label_out_of_range", idx_input(images, idx_labels([3, 10])))
    write("idx", "count_mismatch", idx_input(images, idx_labels([1, 2, 3])))
    write("idx", "truncated_gzip", idx_input(gzip.compress(images, mtime=0)[:-6], labels))
    write("idx", "huge_dimensions",
          idx_input(bytes([0, 0, 8, 3]) + struct.pack(">III", 0xFFFFFFFF, 0xFFFF, 0xFFFF), labels))


# --- safetensors -------------------------------------------------------------------------------

def safetensors(tensors, metadata=None, checksum=True, pad=True):
    """tensors: list of (name, dtype, shape, raw bytes), written back to back."""
    header = {}
    data = b""
    for name, dtype, shape, raw in tensors:
        header[name] = {"dtype": dtype, "shape": shape,
                        "data_offsets": [len(data), len(data) + len(raw)]}
        data += raw
    meta = dict(metadata or {})
    if checksum:
        meta["recur.checksum"] = "%08x" % (zlib.crc32(data) & 0xFFFFFFFF)
    if meta:
        header = {"__metadata__": meta, **header}
    text = json.dumps(header, separators=(",", ":")).encode()
    if pad:
        text += b" " * ((8 - len(text) % 8) % 8)
    return struct.pack("<Q", len(text)) + text + data


def f32(values):
    return struct.pack("<%df" % len(values), *values)


def make_safetensors():
    write("safetensors", "valid_f32", safetensors([("w", "F32", [2, 2], f32([1, -2, 0.5, 3]))]))
    write("safetensors", "valid_mixed_dtypes_no_checksum", safetensors([
        ("a", "F64", [3], struct.pack("<3d", 1.0, 2.5, -1e300)),
        ("b", "I32", [2], struct.pack("<2i", -7, 7)),
        ("c", "I64", [1, 1], struct.pack("<q", 1 << 40)),
        ("d", "U8", [4], b"\x00\x7f\x80\xff"),
        ("empty", "F32", [0, 5], b""),
        ("scalar", "F32", [], f32([4.0])),
    ], metadata={"note": "fuzz seed"}, checksum=False))
    # A whole recur checkpoint: LSTM, input 3, hidden 2, 2 classes.
    h, i, c = 2, 3, 2
    model = {"cell": "lstm", "input_size": i, "steps": 2, "hidden": h, "layers": 1,
             "bidirectional": False, "projection": 0, "pooling": "last", "num_classes": c,
             "dropout": 0.0, "untied": False, "bias": True,
             "init": {k: {"kind": "pytorch", "sigma": 0.01, "bias": "pytorch", "bias_value": 0.0}
                      for k in ("input", "recurrent", "projection", "head")}}
    model["init"]["forget_bias"] = 1.0
    tensors = [
        ("rnn.weight_ih_l0", "F32", [4 * h, i], f32([0.1] * (4 * h * i))),
        ("rnn.weight_hh_l0", "F32", [4 * h, h], f32([-0.1] * (4 * h * h))),
        ("rnn.bias_ih_l0", "F32", [4 * h], f32([0.0] * (4 * h))),
        ("rnn.bias_hh_l0", "F32", [4 * h], f32([0.0] * (4 * h))),
        ("head.weight", "F32", [c, h], f32([0.5] * (c * h))),
        ("head.bias", "F32", [c], f32([0.0] * c)),
    ]
    write("safetensors", "valid_recur_model", safetensors(tensors, metadata={
        "recur.format": "recur-model-1", "recur.model": json.dumps(model, separators=(",", ":")),
        "recur.view": "rows", "recur.view_seed": "0"}))
    good = safetensors([("w", "F32", [2], f32([1, 2]))])
    write("safetensors", "bad_checksum", good[:-1] + b"\x00")
    write("safetensors", "bad_header_length", struct.pack("<Q", 1 << 40) + good[8:])
    text = b'{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},' \
           b'"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}'
    write("safetensors", "bad_overlap", struct.pack("<Q", len(text)) + text + f32([1, 2, 3]))
    text = b'{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},' \
           b'"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}'
    write("safetensors", "bad_duplicate_name", struct.pack("<Q", len(text)) + text + f32([1]))
    text = b'{"a":{"dtype":"BF16","shape":[2],"data_offsets":[0,4]}}'
    write("safetensors", "bad_dtype", struct.pack("<Q", len(text)) + text + b"\0" * 4)
    text = b'{"a":{"dtype":"U8","shape":[4611686018427387904,4],"data_offsets":[0,4]}}'
    write("safetensors", "bad_shape_overflow", struct.pack("<Q", len(text)) + text + b"\0" * 4)
    write("safetensors", "bad_short", b"\x05\x00\x00")


# --- TOML configs ------------------------------------------------------------------------------

def make_toml():
    for name in ("mnist-lstm.toml", "tutorial-001-untied-rnn.toml",
                 "tutorial-003-lstm-projection.toml"):
        path = os.path.join(EXAMPLES, name)
        if os.path.exists(path):
            shutil.copyfile(path, os.path.join(CORPUS, "toml_config", "example_" + name))
    write("toml_config", "valid_every_kind", """# every kind of option
view = "permuted"
view-seed = 42
cell = "gru"
hidden = 16
layers = 2
bidirectional = true
projection = 8
pooling = "mean"
dropout = 0.25
init = "glorot"
init-recurrent = "orthogonal"
bias-init = "constant"
bias-value = 0.5
head-init = "truncated_normal"
head-sigma = 1e-2
optimizer = "sgd"
momentum = 0.9
nesterov = true
schedule = "step"
step-size = 100
gamma = 0.5
clip-value = 1.0
out = 'runs/fuzz'
""")
    write("toml_config", "bad_unknown_key", 'cell = "lstm"\nhiden = 10\n')
    write("toml_config", "bad_value_type", 'hidden = [1, 2]\n')
    write("toml_config", "bad_table", '[model]\ncell = "lstm"\n')
    write("toml_config", "bad_syntax", 'cell = "lstm\nhidden = = 3\n')
    write("toml_config", "bad_enum", 'cell = "transformer"\n')
    write("toml_config", "bad_range", 'hidden = 0\nlayers = 9999999999\n')
    write("toml_config", "toml_features", 'lr = 1_000.5e-3\nseed = 0x2A\nwarmup = +7\n'
          'min-lr = inf\ndata = """multi\nline"""\n"init-sigma" = 0.5 # quoted key\n')
    write("toml_config", "bad_datetime", 'epochs = 1979-05-27T07:32:00Z\n')
    # toml++ 3.3.0 reaches __builtin_unreachable() on a non-ASCII character where it skips
    # whitespace (upstream issue #190); kept as a regression input, see docs/FUZZING.md.
    write("toml_config", "known_tomlpp_190_unreachable", 'seed = \u0407\n'.encode())


# --- pictures ----------------------------------------------------------------------------------

def png_chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(
        ">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


ADAM7 = [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2),
         (0, 1, 1, 2)]


def png(width, height, color_type, bit_depth, sample, extra=b"", interlace=False):
    """sample(x, y) -> tuple of channel values at bit_depth."""
    channels = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}[color_type]

    def row_bytes(xs, y):
        bits = []
        for x in xs:
            for v in sample(x, y)[:channels]:
                bits.append(v)
        if bit_depth >= 8:
            fmt = ">%d%s" % (len(bits), "B" if bit_depth == 8 else "H")
            return struct.pack(fmt, *bits)
        out, acc, n = bytearray(), 0, 0
        for v in bits:
            acc = (acc << bit_depth) | v
            n += bit_depth
            if n == 8:
                out.append(acc)
                acc, n = 0, 0
        if n:
            out.append(acc << (8 - n))
        return bytes(out)

    raw = b""
    if interlace:
        for x0, y0, dx, dy in ADAM7:
            xs = list(range(x0, width, dx))
            if not xs:
                continue
            for y in range(y0, height, dy):
                raw += b"\x00" + row_bytes(xs, y)
    else:
        for y in range(height):
            raw += b"\x00" + row_bytes(range(width), y)
    ihdr = struct.pack(">IIBBBBB", width, height, bit_depth, color_type, 0, 0, 1 if interlace else 0)
    return (b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + extra +
            png_chunk(b"IDAT", zlib.compress(raw, 9)) + png_chunk(b"IEND", b""))


def make_images():
    write("image", "gray8.png", png(5, 4, 0, 8, lambda x, y: (x * 50 + y,)))
    write("image", "gray1.png", png(9, 3, 0, 1, lambda x, y: ((x + y) % 2,)))
    write("image", "gray16.png", png(3, 3, 0, 16, lambda x, y: (x * 20000 + y * 7,)))
    write("image", "rgb8_interlaced.png",
          png(9, 9, 2, 8, lambda x, y: (x * 28, y * 28, 200), interlace=True))
    write("image", "rgba8.png", png(4, 4, 6, 8, lambda x, y: (255, 128, x * 60, y * 80)))
    write("image", "gray_alpha16.png", png(2, 2, 4, 16, lambda x, y: (60000, x * 65535)))
    palette = png_chunk(b"PLTE", bytes([0, 0, 0, 255, 255, 255, 255, 0, 0]))
    trns = png_chunk(b"tRNS", bytes([255, 0]))
    write("image", "palette4_trns.png", png(6, 2, 3, 4, lambda x, y: ((x + y) % 3,),
                                             extra=palette + trns))
    good = png(3, 3, 0, 8, lambda x, y: (x * y * 20,))
    write("image", "bad_crc.png", good[:-5] + b"\xff" + good[-4:])
    write("image", "bad_truncated.png", good[:40])
    ihdr = struct.pack(">IIBBBBB", 20000, 1, 8, 0, 0, 0, 0)
    write("image", "bad_too_large.png", b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) +
          png_chunk(b"IDAT", zlib.compress(b"")) + png_chunk(b"IEND", b""))
    write("image", "plain.pgm", "P2\n# a comment\n3 2\n15\n0 5 10\n15 3 7\n")
    write("image", "binary.pgm", b"P5 4 2 255\n" + bytes(range(0, 256, 32)))
    write("image", "binary16.pgm", b"P5\n2 2\n65535\n" + struct.pack(">4H", 0, 1000, 40000, 65535))
    write("image", "plain.ppm", "P3 2 2 255  255 0 0  0 255 0  0 0 255  255 255 255\n")
    write("image", "binary.ppm", b"P6 2 1 255\n" + bytes([10, 20, 30, 200, 100, 0]))
    write("image", "bad_maxval.pgm", "P2 1 1 70000 5\n")
    write("image", "bad_truncated.pgm", b"P5 4 4 255\n\x00\x01")
    write("image", "bad_sample.pgm", "P2 2 1 10 3 11\n")


# --- model config JSON (the "recur.model" metadata entry) --------------------------------------

def model_json(**changes):
    config = {"cell": "lstm", "input_size": 28, "steps": 28, "hidden": 128, "layers": 1,
              "bidirectional": False, "projection": 0, "pooling": "last", "num_classes": 10,
              "dropout": 0.0, "untied": False, "bias": True,
              "init": {"input": {"kind": "pytorch", "sigma": 0.01, "bias": "pytorch",
                                 "bias_value": 0.0},
                       "recurrent": {"kind": "orthogonal", "sigma": 0.01, "bias": "constant",
                                     "bias_value": 0.5},
                       "projection": {"kind": "glorot", "sigma": 0.01, "bias": "normal",
                                      "bias_value": 0.0},
                       "head": {"kind": "truncated_normal", "sigma": 0.1, "bias": "pytorch",
                                "bias_value": 0.0},
                       "forget_bias": 1.0}}
    config.update(changes)
    return json.dumps(config, separators=(",", ":"))


def make_model_json():
    write("model_json", "valid_lstm", model_json())
    write("model_json", "valid_gru_bidirectional",
          model_json(cell="gru", bidirectional=True, layers=3, pooling="max", dropout=0.5,
                     projection=16))
    write("model_json", "valid_untied_rnn",
          model_json(cell="rnn_relu", untied=True, bias=False, steps=784, input_size=1))
    write("model_json", "bad_missing_key", model_json().replace('"hidden":128,', ""))
    write("model_json", "bad_type", model_json(hidden="128"))
    write("model_json", "bad_range", model_json(layers=0, dropout=1.0))
    write("model_json", "bad_float_for_int", model_json(hidden=12.5))
    write("model_json", "bad_enum", model_json(pooling="attention"))
    write("model_json", "bad_not_json", "{\"cell\": \"lstm\",")


# --- text: [target byte: 0 reviews.json, 1 label<TAB>text, 2 raw text][the file or text] ----------

def make_text():
    def reviews(entries):
        return json.dumps([{"t": t, "s": s} for t, s in entries], ensure_ascii=False)

    write("text", "valid_reviews", b"\x00" + reviews([
        ("A fine film.<br /><br />Don't miss it!", 1),
        ("Awful... 2/10 (really)", 0),
        ("Am\u00e9lie's caf\u00e9 \U0001F3AC", 1)]).encode())
    write("text", "valid_reviews_escapes_extra_field",
          b'\x00[{"t": "tab\\tquote\\" \\u00e9 \\ud83c\\udfac", "s": 0, "id": [1, {"x": null}]}]')
    write("text", "bad_reviews_label", b'\x00[{"t": "ok", "s": 2}]')
    write("text", "bad_reviews_missing_text", b'\x00[{"s": 1}]')
    write("text", "bad_reviews_empty_text", b'\x00[{"t": "", "s": 1}]')
    write("text", "bad_reviews_invalid_utf8", b'\x00[{"t": "caf\xe9", "s": 1}]')
    write("text", "bad_reviews_not_array", b'\x00{"t": "a", "s": 0}')
    write("text", "bad_reviews_truncated", b'\x00[{"t": "a", "s": 0}, {"t": "b')
    write("text", "valid_tsv", b"\x010\tbad movie\r\n\n1\tgood <BR/>movie\n2\tso-so\n")
    write("text", "bad_tsv_label", b"\x011000\ttext\n")
    write("text", "bad_tsv_no_tab", b"\x011 text\n")
    write("text", "bad_tsv_utf8", b"\x010\t\xed\xa0\x80\n")
    write("text", "raw_ascii", b"\x02It's a <br />GREAT movie, isn't it? 10/10!!")
    write("text", "raw_multibyte", "\x02na\u00efve \u20ac5 \U0001F3AC Am\u00e9lie's".encode())
    write("text", "raw_overlong", b"\x02ab\xc0\xafcd")
    write("text", "raw_surrogate", b"\x02\xed\xb0\x80")
    write("text", "raw_truncated", b"\x02caf\xc3")
    write("text", "raw_above_max", b"\x02\xf4\x90\x80\x80")


# --- npy: the .npy file ----------------------------------------------------------------------------

def npy(descr, shape, data, fortran=False, version=1):
    shape_text = "(" + ", ".join(str(d) for d in shape) + ("," if len(shape) == 1 else "") + ")"
    header = "{'descr': '%s', 'fortran_order': %s, 'shape': %s, }" % (
        descr, "True" if fortran else "False", shape_text)
    prefix = 10 if version == 1 else 12
    header += " " * ((64 - (prefix + len(header) + 1) % 64) % 64) + "\n"
    size = struct.pack("<H", len(header)) if version == 1 else struct.pack("<I", len(header))
    return b"\x93NUMPY" + bytes([version, 0]) + size + header.encode() + data


def make_npy():
    write("npy", "valid_f4_sequences", npy("<f4", [2, 3, 2], struct.pack("<12f", *range(12))))
    write("npy", "valid_u1_2d", npy("|u1", [2, 4], bytes(range(0, 240, 30))))
    write("npy", "valid_i8_labels", npy("<i8", [3], struct.pack("<3q", 0, 1, 1)))
    write("npy", "valid_i4_v2", npy("<i4", [2, 2], struct.pack("<4i", 1, -2, 3, 4), version=2))
    write("npy", "valid_b1_v3", npy("|b1", [3], b"\x01\x00\x01", version=3))
    write("npy", "valid_scalar_f8", npy("<f8", [], struct.pack("<d", 2.5)))
    write("npy", "valid_empty", npy("<f4", [0, 5], b""))
    write("npy", "bad_nan", npy("<f4", [1, 2], struct.pack("<2f", 1.0, float("nan"))))
    write("npy", "bad_big_endian", npy(">f4", [1], b"\x00" * 4))
    write("npy", "bad_fortran", npy("<f4", [1], b"\x00" * 4, fortran=True))
    write("npy", "bad_dtype", npy("<c8", [1], b"\x00" * 8))
    write("npy", "bad_truncated", npy("<f4", [2, 3], b"\x00" * 20))
    write("npy", "bad_trailing", npy("<f4", [1], b"\x00" * 6))
    write("npy", "bad_overflow", npy("<f8", [4294967296, 4294967296], b""))
    write("npy", "bad_magic", b"\x93NUMPZ\x01\x00\x04\x00{}  ")
    write("npy", "bad_header", b"\x93NUMPY\x01\x00\x10\x00{'descr': <f4}\n")


# --- infer_request: [model (mod 5)][body of POST /v2/models/NAME/infer] -------------------------

def make_infer_request():
    def req(model, body):
        return bytes([model]) + (json.dumps(body) if not isinstance(body, (bytes, str)) else
                                 body).encode() if not isinstance(body, bytes) else \
            bytes([model]) + body

    row = list(range(28))
    write("infer_request", "valid_images", req(0, {"inputs": [{"name": "input", "datatype": "UINT8",
                                                               "shape": [1, 28, 28],
                                                               "data": row * 28}]}))
    write("infer_request", "valid_nested_f32", req(0, {"inputs": [{
        "name": "input", "datatype": "FP32", "shape": [1, 28, 28],
        "data": [[[0.5] * 28] * 28]}], "outputs": [{"name": "labels"}]}))
    write("infer_request", "valid_stream_row", req(0, {
        "inputs": [{"name": "input", "datatype": "UINT8", "shape": [1, 1, 28], "data": row}],
        "parameters": {"sequence_id": 7, "sequence_start": True}}))
    write("infer_request", "valid_whole", req(1, {"inputs": [{"name": "x", "datatype": "UINT8",
                                                              "shape": [2, 8, 8],
                                                              "data": [1] * 128}]}))
    write("infer_request", "valid_texts", req(2, {"id": "a", "inputs": [{
        "name": "input", "datatype": "BYTES", "shape": [2], "data": ["a fine film", "dull"]}]}))
    write("infer_request", "valid_tokens", req(2, {
        "inputs": [{"name": "input", "datatype": "INT32", "shape": [1, 3], "data": [1, 2, 49]}],
        "parameters": {"sequence_id": "s", "sequence_end": True}}))
    write("infer_request", "valid_lengths", req(3, {"inputs": [
        {"name": "input", "datatype": "FP32", "shape": [2, 2, 3], "data": [0.1] * 12},
        {"name": "lengths", "datatype": "INT32", "shape": [2], "data": [2, 1]}]}))
    write("infer_request", "bad_stream_bidirectional", req(4, {
        "inputs": [{"name": "input", "datatype": "BYTES", "shape": [1], "data": ["x"]}],
        "parameters": {"sequence_id": 1, "sequence_start": True}}))
    write("infer_request", "bad_utf8", req(2, b'{"inputs":[{"datatype":"BYTES","shape":[1],'
                                              b'"data":["\xff"]}]}'))
    write("infer_request", "bad_truncated", req(0, '{"inputs": [{"datatype": "UINT8", "sha'))
    write("infer_request", "bad_shape_overflow", req(0, {"inputs": [{
        "datatype": "UINT8", "shape": [4294967296, 4294967296, 28], "data": []}]}))
    write("infer_request", "bad_deep", req(3, '{"inputs":[{"datatype":"FP32","shape":[1,1,3],'
                                              '"data":' + "[" * 50 + "]" * 50 + '}]}'))


def main():
    if os.path.isdir(CORPUS):
        shutil.rmtree(CORPUS)
    for harness in ("idx", "safetensors", "toml_config", "image", "model_json", "text", "npy",
                    "infer_request"):
        os.makedirs(os.path.join(CORPUS, harness))
    make_idx()
    make_safetensors()
    make_toml()
    make_images()
    make_model_json()
    make_text()
    make_npy()
    make_infer_request()


if __name__ == "__main__":
    main()
