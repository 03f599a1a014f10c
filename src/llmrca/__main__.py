from llmrca.cli import main

main()
