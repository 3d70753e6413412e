from synthmed.cli import main

raise SystemExit(main())
