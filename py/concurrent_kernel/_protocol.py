"""Every Jupyter protocol string the kernel uses, in one place."""

from __future__ import annotations

from enum import StrEnum

PROTOCOL_VERSION = "5.5"


class Channel(StrEnum):
    SHELL = "shell"
    CONTROL = "control"
    STDIN = "stdin"
    IOPUB = "iopub"


class MsgType(StrEnum):
    # shell / control requests and replies
    EXECUTE_REQUEST = "execute_request"
    EXECUTE_REPLY = "execute_reply"
    COMPLETE_REQUEST = "complete_request"
    COMPLETE_REPLY = "complete_reply"
    INSPECT_REQUEST = "inspect_request"
    INSPECT_REPLY = "inspect_reply"
    HISTORY_REQUEST = "history_request"
    HISTORY_REPLY = "history_reply"
    IS_COMPLETE_REQUEST = "is_complete_request"
    IS_COMPLETE_REPLY = "is_complete_reply"
    COMM_INFO_REQUEST = "comm_info_request"
    COMM_INFO_REPLY = "comm_info_reply"
    KERNEL_INFO_REQUEST = "kernel_info_request"
    KERNEL_INFO_REPLY = "kernel_info_reply"
    CONNECT_REQUEST = "connect_request"
    CONNECT_REPLY = "connect_reply"
    SHUTDOWN_REQUEST = "shutdown_request"
    SHUTDOWN_REPLY = "shutdown_reply"
    INTERRUPT_REQUEST = "interrupt_request"
    INTERRUPT_REPLY = "interrupt_reply"
    DEBUG_REQUEST = "debug_request"
    DEBUG_REPLY = "debug_reply"
    CREATE_SUBSHELL_REQUEST = "create_subshell_request"
    CREATE_SUBSHELL_REPLY = "create_subshell_reply"
    DELETE_SUBSHELL_REQUEST = "delete_subshell_request"
    DELETE_SUBSHELL_REPLY = "delete_subshell_reply"
    LIST_SUBSHELL_REQUEST = "list_subshell_request"
    LIST_SUBSHELL_REPLY = "list_subshell_reply"
    # comms (shell in, iopub out)
    COMM_OPEN = "comm_open"
    COMM_MSG = "comm_msg"
    COMM_CLOSE = "comm_close"
    # stdin
    INPUT_REQUEST = "input_request"
    INPUT_REPLY = "input_reply"
    # iopub
    STATUS = "status"
    EXECUTE_INPUT = "execute_input"
    STREAM = "stream"
    DISPLAY_DATA = "display_data"
    UPDATE_DISPLAY_DATA = "update_display_data"
    EXECUTE_RESULT = "execute_result"
    ERROR = "error"
    CLEAR_OUTPUT = "clear_output"
    IOPUB_WELCOME = "iopub_welcome"
    DEBUG_EVENT = "debug_event"


class ExecutionState(StrEnum):
    BUSY = "busy"
    IDLE = "idle"
    STARTING = "starting"


class ReplyStatus(StrEnum):
    OK = "ok"
    ERROR = "error"
    ABORTED = "aborted"


class RunMode(StrEnum):
    QUEUE = "queue"
    TASK = "task"
    THREAD = "thread"


COMM_MSG_TYPES = frozenset({MsgType.COMM_OPEN, MsgType.COMM_MSG, MsgType.COMM_CLOSE})

# Header / metadata keys that are not plain msg fields.
HEADER_SUBSHELL_ID = "subshell_id"
HEADER_RUN_MODE = "run_mode"
METADATA_RUN_MODE = "run_mode"
METADATA_TAGS = "tags"
DISPLAY_TRANSIENT_ID = "display_id"

IMPLEMENTATION = "concurrent_kernel"
LANGUAGE_INFO_NAME = "python"
KERNEL_SPEC_NAME = "concurrent"
KERNEL_DISPLAY_NAME = "Python 3 (concurrent)"
SUPPORTED_FEATURES = ("kernel subshells",)
#: Added to supported_features (and kernel_info's `debugger: true`) when the debugger is enabled.
FEATURE_DEBUGGER = "debugger"
#: Kernelspec metadata key front ends read to offer the debugger.
KERNELSPEC_DEBUGGER = "debugger"
#: Transport encryption (CurveZMQ), as jupyter_client >= 8.9 provisions it: the kernelspec declares
#: `metadata.supported_encryption: ["curve"]`, the connection file then carries the kernel's Z85 keypair.
KERNELSPEC_SUPPORTED_ENCRYPTION = "supported_encryption"
ENCRYPTION_CURVE = "curve"
CONNECTION_CURVE_PUBLICKEY = "curve_publickey"
CONNECTION_CURVE_SECRETKEY = "curve_secretkey"


class DapCommand(StrEnum):
    """Debug Adapter Protocol commands the kernel answers itself or rewrites (the rest go to the backend)."""

    INITIALIZE = "initialize"
    ATTACH = "attach"
    CONFIGURATION_DONE = "configurationDone"
    DISCONNECT = "disconnect"
    DEBUG_INFO = "debugInfo"
    DUMP_CELL = "dumpCell"
    SET_BREAKPOINTS = "setBreakpoints"
    SOURCE = "source"
    VARIABLES = "variables"
    INSPECT_VARIABLES = "inspectVariables"
    RICH_INSPECT_VARIABLES = "richInspectVariables"
    COPY_TO_GLOBALS = "copyToGlobals"
    MODULES = "modules"
    EVALUATE = "evaluate"
    SET_EXPRESSION = "setExpression"
    CONTINUE = "continue"
    THREADS = "threads"


class DapEvent(StrEnum):
    INITIALIZED = "initialized"
    STOPPED = "stopped"
    CONTINUED = "continued"
    THREAD = "thread"


def reply_type(request_type: str) -> str:
    """`foo_request` -> `foo_reply`; anything else gets `_reply` appended so errors are still answered."""
    if request_type.endswith("_request"):
        return request_type[: -len("_request")] + "_reply"
    return request_type + "_reply"
