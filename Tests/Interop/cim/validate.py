"""Validates XML documents against Tests/Interop/cim/Message.xsd (which imports MeterReadings.xsd)
with the xmlschema package: an independent check of what SwiftHES's CIM writer produces.

    python validate.py DOCUMENT.xml [...]     # prints "valid <file>" or the errors; exit 1 if any is invalid
"""
import os
import sys

import xmlschema

HERE = os.path.dirname(os.path.abspath(__file__))


def main(paths):
    schema = xmlschema.XMLSchema(os.path.join(HERE, "Message.xsd"))
    failed = False
    for path in paths:
        errors = list(schema.iter_errors(path))
        if errors:
            failed = True
            for error in errors[:10]:
                print(f"invalid {path}: {error.reason} at {error.path}")
        else:
            print(f"valid {path}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
