"""Commands every bot kernel handles alike, decoded once for all of them."""

from tradetower.bots import codes as C
from tradetower.jit_options import kernel_jit


@kernel_jit
def forced_close_trigger_nb(code: int) -> int:
    """The lifecycle trigger of a command that closes the bot to quote whatever its exit mode:
    the kill switch (``kill_switch``) and the risk engine's close (``risk_limit``); -1 for any
    other code."""
    if code == C.CMD_KILL:
        return C.KILL_SWITCH
    if code == C.CMD_RISK_CLOSE:
        return C.RISK_LIMIT
    return -1
