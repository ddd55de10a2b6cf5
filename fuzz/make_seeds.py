#!/usr/bin/env python3
"""Writes the seed inputs of the fuzz targets into fuzz/seeds/<target>/ (run from fuzz/seeds).

Small valid files of every format the targets read, so that the fuzzer starts past the
headers: IDX images and labels (raw and gzipped), two CIFAR-10 records, digits CSV rows,
PNG (gray, RGB, RGBA) and PGM (binary, ASCII) images, a model folder (MLP with Adam state)
and tensor shapes. Deterministic; rerun after changing a format."""
import gzip, json, struct, zlib, os
os.makedirs("idx", exist_ok=True)
imgs = struct.pack(">IIII", 0x803, 2, 3, 3) + bytes(range(18))
labs = struct.pack(">II", 0x801, 2) + bytes([3, 7])
open("idx/images", "wb").write(imgs)
open("idx/labels", "wb").write(labs)
open("idx/images.gz", "wb").write(gzip.compress(imgs, mtime=0))
open("idx/labels.gz", "wb").write(gzip.compress(labs, mtime=0))
os.makedirs("cifar", exist_ok=True)
open("cifar/two_records", "wb").write(bytes([3]) + bytes(i % 256 for i in range(3072)) + bytes([9]) + bytes(3072))
os.makedirs("digits_csv", exist_ok=True)
rows = [",".join(str((i * 7 + r) % 17) for i in range(64)) + f",{r}" for r in range(3)]
open("digits_csv/three_rows.csv", "w").write("\n".join(rows) + "\n")
open("digits_csv/three_rows.csv.gz", "wb").write(gzip.compress(("\n".join(rows) + "\n").encode(), mtime=0))
os.makedirs("image", exist_ok=True)
def png(w, h, color_type, channels, depth=8):
    raw = b"".join(b"\x00" + bytes((x * 40 + y * 13 + c * 70) % 256 for x in range(w) for c in range(channels)) for y in range(h))
    def chunk(t, d):
        return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xffffffff)
    ihdr = struct.pack(">IIBBBBB", w, h, depth, color_type, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")
open("image/gray.png", "wb").write(b"\x00" + png(5, 4, 0, 1))
open("image/rgba.png", "wb").write(b"\x07" + png(4, 6, 6, 4))
open("image/rgb.png", "wb").write(b"\x02" + png(3, 3, 2, 3))
open("image/binary.pgm", "wb").write(b"\x01" + b"P5\n# comment\n4 3\n255\n" + bytes(range(0, 240, 20)))
open("image/ascii.pgm", "wb").write(b"\x04" + b"P2\n3 2\n15\n0 5 10\n15 3 7\n")
os.makedirs("model_folder", exist_ok=True)
cfg = {"format": 1, "dataset": "digits", "model": "mlp", "input": 64, "hidden": [2],
       "output": 10, "activation": "relu", "dropout": 0.0, "image": [1, 8, 8],
       "max_value": 16.0, "normalize_mean": 0.3, "normalize_std": 0.4,
       "class_names": [str(i) for i in range(10)],
       "training": {"optimizer": "adam", "lr": 0.001, "momentum": 0.0, "nesterov": False,
                    "weight_decay": 0.0, "schedule": "cosine", "warmup": 0, "clip_grad": None,
                    "label_smoothing": 0.0, "batch_size": 32, "epochs": 3, "val_fraction": 0.1,
                    "seed": 0, "epochs_done": 3}}
def safetensors(tensors):
    header, data = {}, b""
    for name, dtype, shape, payload in tensors:
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [len(data), len(data) + len(payload)]}
        data += payload
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    return struct.pack("<Q", len(h)) + h + data
def f32(n, v=0.25):
    return struct.pack("<%df" % n, *([v] * n))
shapes = [("layers.0.weight", [2, 64]), ("layers.0.bias", [2]), ("layers.2.weight", [10, 2]), ("layers.2.bias", [10])]
model = safetensors([(n, "F32", s, f32(eval("*".join(map(str, s))))) for n, s in shapes])
opt = [("step", "I64", [], struct.pack("<q", 3))]
for n, s in shapes:
    k = eval("*".join(map(str, s)))
    opt += [(n + ".exp_avg", "F32", s, f32(k, 0.01)), (n + ".exp_avg_sq", "F32", s, f32(k, 0.001))]
optimizer = safetensors(opt)
c = json.dumps(cfg).encode()
pack = b"".join(struct.pack("<I", len(p)) + p for p in (c, model, optimizer))
open("model_folder/mlp_adam", "wb").write(pack)
os.makedirs("tensor", exist_ok=True)
open("tensor/2x3", "wb").write(bytes([2]) + struct.pack("<QQ", 2, 3) + bytes(range(6)))
open("tensor/scalar", "wb").write(bytes([0]) + bytes([5]))
open("tensor/huge", "wb").write(bytes([3]) + struct.pack("<QQQ", 1 << 40, 1 << 40, 0) + bytes(4))
