from sd_desktop.cli import main

raise SystemExit(main())
