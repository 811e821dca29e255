"""Text drawn in a chart is drawn as text.

Matplotlib reads any pair of ``$`` in a label as mathtext: ``Income_Category = $60K - $80K``
comes out as italic maths with both dollars gone.  Chart labels come from the CRM (column
names, category levels, client ids), so every label built from data goes through
:func:`literal` before it is drawn.
"""

from __future__ import annotations


def literal(text: object) -> str:
    """``text`` with every ``$`` escaped, so matplotlib draws it as written."""
    return str(text).replace("$", r"\$")


__all__ = ["literal"]
