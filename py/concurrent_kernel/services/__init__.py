"""Shell-side services: the IPython shell, output streams, stdin, comms, magics, GUI loops, background tasks."""
