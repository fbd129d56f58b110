"""Reads an answer file of the XML folder interface with Python's own XML parser, independently
of onshi: decodes it as its XML declaration says (strictly), parses it with ElementTree, and
prints as JSON the declared encoding, every element's text by path (the first of repeated
elements), and each entry of MessageBody/ResultList (every ResultOfQualificationConfirmation,
its elements' text by path below it)."""

import json
import re
import sys
import xml.etree.ElementTree as ET

raw = open(sys.argv[1], "rb").read()
declaration = re.match(rb'<\?xml[^>]*encoding="([^"]+)"[^>]*\?>', raw)
encoding = declaration.group(1).decode("ascii") if declaration else "UTF-8"
codec = {"utf-8": "utf-8", "shift_jis": "shift_jis"}[encoding.lower()]
text = raw.decode(codec, errors="strict")
# The declaration names an encoding ElementTree cannot decode itself; the text is decoded.
root = ET.fromstring(text[declaration.end():] if declaration else text)


def walk(element, path, fields):
    here = f"{path}/{element.tag}" if path else element.tag
    children = list(element)
    if not children:
        fields.setdefault(here, element.text or "")
    for child in children:
        walk(child, here, fields)


fields = {}
walk(root, "", fields)
entries = []
for entry in root.findall("./MessageBody/ResultList/ResultOfQualificationConfirmation"):
    found = {}
    for child in entry:
        walk(child, "", found)
    entries.append(found)
print(json.dumps({"encoding": encoding, "fields": fields, "entries": entries}, ensure_ascii=False))
