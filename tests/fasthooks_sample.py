"""Call shapes for the C-versus-Python callback comparison (tests/test_fasthooks.py)."""


def pair(a, b):
    return (a, b)


def login(user, api_token, *rest, **options):
    return f"{user}:{len(rest)}:{sorted(options)}"


def captured(x):
    def inner():
        return x  # x is a cell variable of captured()

    return inner()


def nothing():
    return None


def raises_caught(n):
    try:
        raise KeyError(n)
    except KeyError:
        return n


def boom(n):
    if n <= 0:
        raise ZeroDivisionError("at the bottom")
    return boom(n - 1)


class Shown:
    """Its __repr__ is traced too: the recorder must not record itself formatting it."""

    def __init__(self, name):
        self.name = name

    def __repr__(self):
        return f"Shown({self.name!r})"

    def rename(self, name, secret="s3"):
        self.name = name
        return self
