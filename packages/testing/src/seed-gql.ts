/** One GraphQL call of the demo seed through the gateway; any error stops the seed. */
interface GqlResponse<T> {
  data?: T;
  errors?: { message: string; extensions?: { code?: string } }[];
}

export async function call<T>(url: string, query: string, variables: Record<string, unknown>, token?: string): Promise<T> {
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: JSON.stringify({ query, variables }),
  });
  const body = (await res.json()) as GqlResponse<T>;
  if (body.errors?.length || !body.data) throw new Error(`seed: ${body.errors?.map((e) => e.message).join('; ') ?? res.status}`);
  return body.data;
}
