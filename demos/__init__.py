"""The parts of ``demo.py``: each shows one package against the running services and says what it measured."""
