// Copies non-TypeScript assets (Lua filters) next to the compiled JavaScript in lib/.
import { cpSync, existsSync } from 'node:fs';
if (existsSync('src/lua')) cpSync('src/lua', 'lib/lua', { recursive: true, filter: (f) => !f.endsWith('.ts') });
