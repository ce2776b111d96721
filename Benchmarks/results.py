"""Reading results.tsv (GROUP TARGET KEY VALUE, a key once per round), shared by the reports."""
import statistics
from collections import defaultdict


def load(path):
    data = defaultdict(lambda: defaultdict(list))
    for line in open(path):
        parts = line.rstrip("\n").split("\t", 3)
        if len(parts) == 4:
            data[(parts[0], parts[1])][parts[2]].append(parts[3])
    return data


def floats(d, key):
    """Every value of `key` that is a number."""
    out = []
    for v in d.get(key, []):
        try:
            out.append(float(v))
        except ValueError:
            pass
    return out


def med(d, key):
    """The median over rounds, or None when the key was never measured."""
    v = floats(d, key)
    return statistics.median(v) if v else None
