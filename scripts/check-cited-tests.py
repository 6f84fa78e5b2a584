#!/usr/bin/env python3
"""Fails when the docs cite a test that does not exist.

A citation is a code span in docs/*.md or README.md naming a GoogleTest test the way
--gtest_filter does: `Suite.Name`, `Suite.*`, `Suite.Name/param` or `Prefix*`. Each must match at
least one TEST/TEST_F/TEST_P defined under tests/. Run by scripts/test.sh; prints each citation
that matches nothing, with its file and line, and exits 1 if there is any.
"""
import fnmatch
import pathlib
import re
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
DEFINED = re.compile(r"\bTEST(?:_F|_P)?\(\s*(\w+)\s*,\s*(\w+)\s*\)")
SPAN = re.compile(r"`([^`\n]+)`")
# Suite.Name, Suite.*, Suite.Name/param, Prefix*: a capitalised identifier, then a dot and a name
# or pattern (when the identifier ends in "Test" or is a defined suite), or a trailing star (on a
# line that speaks of tests).
CITATION = re.compile(r"^([A-Z][A-Za-z0-9]*)(\.[A-Za-z0-9_*]+(/[A-Za-z0-9_]+)?|\*)$")


def defined_tests():
    tests = set()
    for path in (ROOT / "tests").rglob("*.cc"):
        for suite, name in DEFINED.findall(path.read_text(encoding="utf-8", errors="replace")):
            tests.add(f"{suite}.{name}")
    return tests


def main():
    tests = defined_tests()
    suites = {t.split(".")[0] for t in tests}
    docs = sorted((ROOT / "docs").glob("*.md")) + [ROOT / "README.md"]
    missing = []
    cited = 0
    for doc in docs:
        for lineno, line in enumerate(doc.read_text(encoding="utf-8").splitlines(), 1):
            for span in SPAN.findall(line):
                m = CITATION.match(span.strip())
                if not m:
                    continue
                suite = m.group(1)
                if m.group(2) == "*":
                    if "test" not in line.lower():
                        continue  # `Protect*` (systemd options) and the like, not a test
                elif not (suite.endswith("Test") or suite in suites):
                    continue  # Type.member in prose, not a test
                pattern = span.strip().split("/")[0]
                cited += 1
                if not any(fnmatch.fnmatchcase(t, pattern) for t in tests):
                    missing.append(f"{doc.relative_to(ROOT)}:{lineno}: `{span}` names no test")
    for m in missing:
        print(m)
    print(f"check-cited-tests: {cited} citation(s) of tests in the docs, {len(missing)} naming "
          f"no test ({len(tests)} tests defined)")
    return 1 if missing else 0


if __name__ == "__main__":
    sys.exit(main())
