from netemu.cli import main

main()
