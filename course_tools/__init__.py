"""course_tools: the machinery that builds, tests and serves *Attention, Step by Step*.

Not course material: learners import ``attention_kit``; the Makefile and the tests run
these modules (``python -m course_tools.<module>``). This package may import
``attention_kit``; ``attention_kit`` never imports it.

- ``release``: writes the student labs (``notebooks/``) from ``solutions/``
- ``book``: the table of contents, with or without the solutions; builds the book
- ``executed``: hands the notebooks nbval executed to the book build
- ``browser``: headless Chromium with the network blocked, for the browser tests
- ``slides``: ``make slides``, offline reveal.js decks of the lectures
- ``grading``: ``make nbgrader``, an nbgrader course directory from the solutions
- ``learner``: ``make lab``'s copy into ``my_labs/`` and ``make progress``'s table
- ``bench``: ``make bench``, the course's measurements as a table
"""
