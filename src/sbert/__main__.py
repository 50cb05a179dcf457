from sbert.cli.main import main

main()
