import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { Route } from '@flywheel/service-kit';

// GraphiQL for development, served from the installed npm packages: works offline, no CDN.
const assets: Record<string, { pkg: string; file: string; type: string }> = {
  '/ide/react.js': { pkg: 'react', file: 'umd/react.production.min.js', type: 'text/javascript' },
  '/ide/react-dom.js': { pkg: 'react-dom', file: 'umd/react-dom.production.min.js', type: 'text/javascript' },
  '/ide/graphiql.js': { pkg: 'graphiql', file: 'graphiql.min.js', type: 'text/javascript' },
  '/ide/graphiql.css': { pkg: 'graphiql', file: 'graphiql.min.css', type: 'text/css' },
};

// The UMD bundles are not in the packages' export maps: locate each package, then the file.
const packageFile = (pkg: string, file: string) => join(dirname(require.resolve(`${pkg}/package.json`)), file);

const page = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8"><title>Flywheel GraphQL</title>
<link rel="stylesheet" href="/ide/graphiql.css">
<style>html,body,#ide{height:100%;margin:0}</style>
</head>
<body>
<div id="ide"></div>
<script src="/ide/react.js"></script>
<script src="/ide/react-dom.js"></script>
<script src="/ide/graphiql.js"></script>
<script>
  const fetcher = GraphiQL.createFetcher({ url: '/graphql', headers: { 'apollo-require-preflight': 'true' } });
  const defaultQuery = '# Sign in with requestLoginCode + login, then put\\n# {"Authorization": "Bearer <accessToken>"} in Headers below.\\n{\\n  products(first: 5) { edges { node { id name price { amount currency } } } }\\n}\\n';
  ReactDOM.createRoot(document.getElementById('ide')).render(
    React.createElement(GraphiQL, { fetcher, defaultQuery, shouldPersistHeaders: true }),
  );
</script>
</body>
</html>`;

export function ideRoute(): Route {
  const cache = new Map<string, Buffer>();
  return (req, res) => {
    if (req.method !== 'GET') return false;
    const path = (req.url ?? '/').split('?')[0] ?? '/';
    if (path === '/' || (path === '/graphql' && (req.headers.accept ?? '').includes('text/html'))) {
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' }).end(page);
      return true;
    }
    const asset = assets[path];
    if (!asset) return false;
    let body = cache.get(path);
    if (!body) {
      body = readFileSync(packageFile(asset.pkg, asset.file));
      cache.set(path, body);
    }
    res.writeHead(200, { 'content-type': asset.type, 'cache-control': 'public, max-age=3600' }).end(body);
    return true;
  };
}
