"""``python -m arcface_trt`` runs the command-line interface."""

from arcface_trt.cli.app import main

if __name__ == "__main__":
    main()
