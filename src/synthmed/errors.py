"""The one exception type that means "the user gave us something wrong"."""

EXIT_USER_ERROR = 2  # the exit code of a UserError in the commands


class UserError(Exception):
    """Bad input from the user (a file, a folder, an option).

    The CLI prints the message as one line and exits with code 2, without a traceback.
    The message should name the file and say what is wrong with it.
    """
