#!/usr/bin/env python3
"""Checks config/switchyard.schema.json against the shipped configs and the parser.

usage: config_schema.py REPO_ROOT

1. Every config/*.json (but the schema) is valid against the schema (draft 2020-12, with the
   `jsonschema` package), after removing comments and trailing commas as the loader does.
2. Every key list the parser reads objects with (`object(keys: [...])` in Sources/Config,
   static lists such as `Self.resilienceKeys` resolved) is the property list of an object in the
   schema, and every closed object in the schema is one of those lists.
Prints one line per problem and exits 1 when there is any.
"""
import glob
import json
import os
import re
import sys

import jsonschema


def strip_jsonc(text):
    """JSON with // and /* */ comments and trailing commas -> JSON (strings left alone)."""
    out, i, n = [], 0, len(text)
    while i < n:
        c = text[i]
        if c == '"':
            j = i + 1
            while j < n and text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            out.append(text[i:j + 1])
            i = j + 1
        elif text.startswith("//", i):
            while i < n and text[i] != "\n":
                i += 1
        elif text.startswith("/*", i):
            end = text.find("*/", i + 2)
            i = n if end < 0 else end + 2
        else:
            out.append(c)
            i += 1
    return re.sub(r",(\s*[\]}])", r"\1", "".join(out))


def parser_key_lists(root):
    sources = {p: open(p, encoding="utf-8").read() for p in sorted(glob.glob(os.path.join(root, "Sources/Config/*.swift")))}
    everything = "\n".join(sources.values())

    def resolve(expr):
        keys = re.findall(r'"([^"]*)"', expr)
        for name in re.findall(r"\b(?:Self|[A-Z][A-Za-z]*)\.([a-z][A-Za-z]*Keys)\b", expr):
            m = re.search(r"static let " + name + r"(?::[^=]*)?\s*=\s*(\[[^\]]*\])", everything)
            if not m:
                raise SystemExit(f"cannot find the key list {name}")
            keys += resolve(m.group(1))
        return keys

    lists = []
    for path, text in sources.items():
        for m in re.finditer(r"\bobject\(keys:", text):
            i, depth = m.end(), 1
            while depth:
                depth += {"(": 1, ")": -1}.get(text[i], 0)
                i += 1
            expr = text[m.end():i - 1].strip()
            if expr.startswith("[String]"):
                continue  # the declaration itself
            line = text.count("\n", 0, m.start()) + 1
            lists.append((f"{os.path.relpath(path, root)}:{line}", frozenset(resolve(expr))))
    return lists


def schema_objects(node, found):
    if isinstance(node, dict):
        if node.get("additionalProperties") is False and "properties" in node:
            found.add(frozenset(node["properties"]))
        for value in node.values():
            schema_objects(value, found)
    elif isinstance(node, list):
        for value in node:
            schema_objects(value, found)
    return found


def main():
    root = sys.argv[1]
    problems = []
    schema = json.load(open(os.path.join(root, "config/switchyard.schema.json"), encoding="utf-8"))
    jsonschema.Draft202012Validator.check_schema(schema)
    validator = jsonschema.Draft202012Validator(schema)
    configs = sorted(p for p in glob.glob(os.path.join(root, "config/*.json")) if not p.endswith(".schema.json"))
    if not configs:
        problems.append("no config/*.json")
    for path in configs:
        document = json.loads(strip_jsonc(open(path, encoding="utf-8").read()))
        for error in validator.iter_errors(document):
            where = "/".join(str(p) for p in error.absolute_path)
            problems.append(f"{os.path.basename(path)}: {where}: {error.message}")
    lists = parser_key_lists(root)
    if len(lists) < 20:
        problems.append(f"found only {len(lists)} key lists in Sources/Config: the extraction is broken")
    objects = schema_objects(schema, set())
    for where, keys in lists:
        if keys not in objects:
            near = max(objects, key=lambda o: len(o & keys))
            problems.append(f"{where}: no schema object has exactly the keys {sorted(keys)} "
                            f"(nearest lacks {sorted(keys - near)}, has extra {sorted(near - keys)})")
    parsed = {keys for _, keys in lists}
    for keys in objects - parsed:
        problems.append(f"the schema has an object the parser does not read: {sorted(keys)}")
    for p in problems:
        print(p)
    print(f"checked {len(configs)} configs, {len(lists)} key lists")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
