from freehead.cli import main

raise SystemExit(main())
