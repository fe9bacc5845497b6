from emolab.cli import main

main()
