"""bookcheck: quality gates on a built book (site and PDF).

Each check is a function that takes what the build produced and returns a
list of problems (strings naming the file and what is wrong); an empty list
means the check passed. The tests apply them to the real book in _build/ and
to deliberately broken fixtures, so every gate is shown to fail when it should.
"""
