"""The heaviest functions of a py-spy profile (`py-spy record --format raw`: one collapsed
stack and its sample count a line), by own and by inclusive samples.

  profile_top.py PROFILE.txt [N]
"""

import collections
import re
import sys

# py-spy's raw frames look like "function (path/to/file.py:123)"; group by function and file.
FRAME = re.compile(r"^(?P<fn>.*?) \((?P<file>[^:()]*)(?::\d+)?\)$")
SITE = re.compile(r".*/site-packages/|.*/lib/python3\.\d+/")


def frame_name(frame):
    match = FRAME.match(frame.strip())
    if not match:
        return frame.strip()
    return f"{match['fn']} ({SITE.sub('', match['file'])})"


def main(path, n=25):
    own, inclusive, total = collections.Counter(), collections.Counter(), 0
    with open(path) as f:
        for line in f:
            stack, _, count = line.rstrip("\n").rpartition(" ")
            if not stack or not count.isdigit():
                continue
            count = int(count)
            total += count
            frames = [frame_name(fr) for fr in stack.split(";") if fr]
            if frames:
                own[frames[-1]] += count
            for name in set(frames):
                inclusive[name] += count
    print(f"{total} samples")
    for title, counter in (("own", own), ("inclusive", inclusive)):
        print(f"\nby {title} samples:")
        for name, count in counter.most_common(n):
            print(f"  {100 * count / total:5.1f} %  {name}")


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 25)
