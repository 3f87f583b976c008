"""The scheduler: tasks become jobs at the right moments, go to backends and come back as they end.

    taskspec   what a task is (TaskSpec, JobDraft, the directives' arguments)
    timing     the pure scheduling maths (takes `now`) and the timer heap
    loop       the Scheduler: the task table, the job table and the loop between them
    jobs       Job, its states, and the Backend and JobSink interfaces
    local      the backend of `host LOCAL` jobs; remote: the link to pcontrol
    attach     the one place that builds a Scheduler and hands it its backends
    commands/  the task block, the scheduler's prompt commands, `controller`

It imports the language (psched.lang), never the shell.
"""
