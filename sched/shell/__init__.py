"""The `sched` program: scripts, a pipe or the interactive prompt (cli, repl, completer, highlight),
leaving and interrupting (session), and where its state lives (paths). The top layer: it imports
the scheduler and the language, and nothing imports it."""
