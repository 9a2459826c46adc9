"""A failed step, told in one line: shared by the runner and the run-failure alerts."""


def step_error(event) -> str:
    """What a person can act on: a Failure's description, else the innermost exception."""
    data = event.step_failure_data
    if data is None:
        return event.message or "failed"
    if data.user_failure_data is not None and data.user_failure_data.description:
        return data.user_failure_data.description
    error = data.error
    while error is not None and error.cause is not None:
        error = error.cause
    return error.message.strip() if error is not None else (event.message or "failed")
