from coinfeed.cli import main

raise SystemExit(main())
