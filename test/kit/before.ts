// tap's `before` script (package.json "tap"): makes the migrated database copy source once per run,
// before any file starts, so parallel files copy it instead of racing to make it.
import { prepareMigrated } from './database.js';

await prepareMigrated();
