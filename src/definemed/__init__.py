"""definemed: build a domain- and language-specialised LLM from open web data.

Stages (each a sub-package): corpus -> train -> merge -> eval -> report.
"""

__version__ = "0.1.0"
