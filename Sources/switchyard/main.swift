// The switchyard executable: argument parsing and wiring only.
import Glibc

exit(CLI.main(Array(CommandLine.arguments.dropFirst())))
