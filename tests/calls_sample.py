"""A small module with known calls, traced by the recorder tests."""

import asyncio


def fib(n):
    return n if n < 2 else fib(n - 1) + fib(n - 2)


def fail(x, password="hunter2"):
    raise ValueError(f"bad {x}")


def echo(value):
    return value


def countdown(n):
    while n > 0:
        yield n
        n -= 1


class Counter:
    def __init__(self):
        self.n = 0

    def bump(self, by=1):
        self.n += by
        return self.n

    class Inner:
        @staticmethod
        def twice(x):
            return 2 * x


async def double(x):
    await asyncio.sleep(0)
    return 2 * x


async def main(n):
    return await asyncio.gather(*(double(i) for i in range(n)))
