"""Validates FHIR R4 resources with an independent model (fhir.resources 6.5, FHIR 4.0.1).

Reads a JSON array of resources on standard input; prints one line per resource and exits 1
when any does not validate.
"""
import json
import sys

from fhir.resources import construct_fhir_element

failed = False
for resource in json.load(sys.stdin):
    try:
        construct_fhir_element(resource["resourceType"], resource)
        print("valid", resource["resourceType"])
    except Exception as error:  # the model's validation errors name the element
        failed = True
        print("invalid", resource.get("resourceType"), error)
sys.exit(1 if failed else 0)
