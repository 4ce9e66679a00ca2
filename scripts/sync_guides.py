#!/usr/bin/env python3
"""Rewrites the code blocks in docs/guides/*.md that follow a
`<!-- source: PATH -->` marker with the current content of PATH.
The test `docs::guides_embed_the_tested_examples` fails until this is run
after an example changes."""
import pathlib
import re

root = pathlib.Path(__file__).resolve().parent.parent
pattern = re.compile(r"(<!-- source: (\S+) -->\n```[a-z]*\n)(.*?)(```\n)", re.S)
for guide in sorted((root / "docs/guides").glob("*.md")):
    text = guide.read_text()
    new = pattern.sub(lambda m: m.group(1) + (root / m.group(2)).read_text() + m.group(4), text)
    if new != text:
        guide.write_text(new)
        print("updated", guide.relative_to(root))
