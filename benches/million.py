#!/usr/bin/env python3
"""Generates a tree of many small files in the shape of a real one, from a seed.

    benches/million.py ROOT [--files 1000000] [--seed 1]

Directories hold a few to a few hundred files (most hold about 20) and a few
subdirectories, at most 10 deep; file sizes follow a log-normal law around
2 KiB (a quarter above 8 KiB, a few up to 1 MiB), as in source trees, mail
stores and package caches; one file in twenty is a copy of an earlier one.
Content is text-like (zstd shrinks it about 3x) with random bytes mixed in.
The same seed always gives the same tree, byte for byte.
"""
import argparse
import math
import os
import random

WORDS = (
    "the of and to in is that for it as was with be by on not he this are or "
    "his from at which but have an they you were her she there been one all "
    "would their we him has when who will more no if out so said what up its "
    "about into than them can only other new some could time these two may "
    "then do first any my now such like our over man me even most made after "
    "also did many before must through back years where much your way well"
).split()


def size_of(rng):
    """A file size: log-normal around 2 KiB, at most 1 MiB."""
    return min(int(rng.lognormvariate(math.log(2048), 1.4)), 1 << 20)


def content(rng, size):
    """`size` bytes of text-like content."""
    words = []
    length = 0
    while length < size:
        if rng.random() < 0.05:
            word = rng.randbytes(12).hex()
        else:
            word = rng.choice(WORDS)
        words.append(word)
        length += len(word) + 1
    return (" ".join(words)).encode()[:size]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("root")
    parser.add_argument("--files", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    os.makedirs(args.root, exist_ok=True)
    written = []
    left = args.files
    # Directories to fill, breadth first: (path, depth).
    queue = [(args.root, 0)]
    serial = 0
    while left > 0:
        if not queue:
            queue.append((args.root, 0))
        path, depth = queue.pop(0)
        count = min(left, max(1, int(rng.lognormvariate(math.log(20), 1.0))))
        for _ in range(count):
            serial += 1
            name = os.path.join(path, f"f{serial:07d}.{rng.choice(['txt', 'c', 'h', 'json', 'md', 'rs'])}")
            if written and rng.random() < 0.05:
                data = written[rng.randrange(len(written))]
            else:
                data = content(rng, size_of(rng))
                if len(written) < 10_000:
                    written.append(data)
            with open(name, "wb") as f:
                f.write(data)
        left -= count
        if depth < 10:
            for _ in range(rng.choice([0, 1, 1, 2, 2, 3, 4])):
                serial += 1
                sub = os.path.join(path, f"d{serial:07d}")
                os.mkdir(sub)
                queue.append((sub, depth + 1))


if __name__ == "__main__":
    main()
