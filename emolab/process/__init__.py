"""The engine behind the console: one table of commands, the wire format, and the child process."""
