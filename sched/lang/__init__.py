"""The sched language: text becomes a syntax tree (grammar, parser, nodes) and a result (interp).

It knows no scheduler and no terminal: the layers above hand it what they need through the
interpreter's named hooks (clock, quit_checks, exit_hooks, completers, interactive) and
register their commands in the one registry. Its own commands, in lang/commands/, are a
plug-in family: each sees the core of the language (args, patterns, registry, interp...),
never a sibling command module.
"""
