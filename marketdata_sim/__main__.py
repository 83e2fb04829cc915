from marketdata_sim.cli import main

main()
