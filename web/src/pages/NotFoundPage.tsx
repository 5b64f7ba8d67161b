import { Link } from "react-router";
import { Empty, PageHeader } from "../components/ui";

export function NotFoundPage() {
  return (
    <>
      <PageHeader title="Page not found" />
      <Empty title="Nothing lives at this address.">
        <Link to="/">Back to the dashboard</Link>
      </Empty>
    </>
  );
}
