"""``synthmed fit``: the whole pipeline on a lab's own pairs in one command.

:mod:`~synthmed.fitting.plan` turns what the data is (size, channels, the kind of mask),
the time budget and the machine's measured speed into a plan; :mod:`~synthmed.fitting.run`
carries it out (hold-out split, Stage I, Stage II, generation, evaluation, report) and
resumes where a killed run stopped.
"""
