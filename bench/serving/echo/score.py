"""Echo entry script: the cost of the serving path itself."""


def init():
    pass


def run(raw_data):
    return raw_data
