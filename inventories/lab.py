# The running lab's hosts (`ollama-claude lab up`), grouped by the groups given at `up` (default: gpu).
#   pyinfra inventories/lab.py deploys/<deploy>.py                      # the default lab, named "lab"
#   OLLAMA_CLAUDE_LAB=test pyinfra inventories/lab.py deploys/hello.py  # another lab by name
# OLLAMA_CLAUDE_LAB_DIR overrides where lab state lives (default: .lab/ at the repository root).
import os as _os

from pyinfra.api.exceptions import InventoryError as _InventoryError

from ollama_claude.lab.errors import LabError as _LabError
from ollama_claude.lab.inventory import lab_inventory as _lab_inventory

try:
    globals().update(_lab_inventory(_os.environ.get("OLLAMA_CLAUDE_LAB", "lab")))
except _LabError as _error:
    raise _InventoryError(str(_error)) from None
