"""A small module that the call-heavy workload never calls: tracing it must cost
(almost) nothing while the rest of the program runs."""


def checksum(values):
    total = 0
    for v in values:
        total = (total * 31 + v) & 0xFFFFFFFF
    return total


class Counter:
    def __init__(self):
        self.n = 0

    def bump(self, k=1):
        self.n += k
        return self.n
