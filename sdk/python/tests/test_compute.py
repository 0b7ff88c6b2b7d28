import io
import unittest
from contextlib import redirect_stdout

import _harness

from hangar.core.compute import (AdlaCompute, AksCompute, AmlCompute, BatchCompute, ComputeInstance, ComputeTarget,
                                 DatabricksCompute, HDInsightCompute, KubernetesCompute, RemoteCompute)
from hangar.core.compute_target import ComputeTargetException
from hangar.exceptions import ComputeTargetException as CTE2, UserErrorException


def prov(**kw):
    kw.setdefault("vm_size", "STANDARD_D2_V2")
    kw.setdefault("max_nodes", 2)
    return AmlCompute.provisioning_configuration(**kw)


class ValidationTest(unittest.TestCase):
    """Client-side checks with v1's messages; no server involved."""

    def check(self, msg, **kw):
        with self.assertRaises(ComputeTargetException) as cm:
            AmlCompute.provisioning_configuration(**kw)
        self.assertIn(msg, str(cm.exception))

    def test_same_class(self):
        self.assertIs(ComputeTargetException, CTE2)

    def test_defaults(self):
        c = AmlCompute.provisioning_configuration(max_nodes=4)
        self.assertEqual((c.vm_size, c.vm_priority, c.scale_settings.minimum_node_count,
                          c.scale_settings.idle_seconds_before_scaledown), ("", "dedicated", 0, 1800))
        c = AmlCompute.provisioning_configuration(max_nodes=4, min_nodes=None)
        self.assertEqual(c.scale_settings.minimum_node_count, 0)

    def test_messages(self):
        self.check("Invalid provisioning configuration, max nodes count is mandatory")
        self.check("max nodes count must be greater than or equal to 0", max_nodes=-1)
        self.check("max nodes count must be greater than or equal to min nodes count", min_nodes=3, max_nodes=2)
        self.check("admin username must be provided along with either a password or SSH key", max_nodes=1,
                   admin_user_password="Aa1!aaaa")
        self.check("no password or key information provided", max_nodes=1, admin_username="u")
        self.check("Invalid admin user password provided", max_nodes=1, admin_username="u",
                   admin_user_password="alllowercase")
        self.check("not all virtual net information provided", max_nodes=1, vnet_name="v")
        self.check("identity_type must be set to 'UserAssigned' or 'SystemAssigned'", max_nodes=1, identity_type="x")
        self.check("pass the identity_id of the user assigned identity as a list", max_nodes=1,
                   identity_type="UserAssigned")
        self.check("identity_id cannot be set when identity type is not user assigned", max_nodes=1,
                   identity_type="SystemAssigned", identity_id=["a"])

    def test_secrets_not_echoed(self):
        c = AmlCompute.provisioning_configuration(max_nodes=1, admin_username="u", admin_user_password="S3cret!Pass")
        self.assertNotIn("S3cret", repr(c))

    def test_unsupported_kinds(self):
        calls = [lambda: ComputeInstance.provisioning_configuration(vm_size="STANDARD_D3_V2"),
                 lambda: RemoteCompute.attach_configuration(username="u", address="1.2.3.4", ssh_port=22),
                 lambda: HDInsightCompute.attach_configuration(username="u", address="h", password="p"),
                 lambda: BatchCompute.attach_configuration(resource_group="rg", account_name="a"),
                 lambda: DatabricksCompute.attach_configuration(resource_group="rg", workspace_name="w",
                                                                access_token="tok"),
                 lambda: AdlaCompute.attach_configuration(resource_group="rg", account_name="a"),
                 lambda: AksCompute.provisioning_configuration(),
                 lambda: KubernetesCompute.attach_configuration(resource_id="x")]
        for call in calls:
            with self.assertRaises(ComputeTargetException) as cm:
                call()
            self.assertIn("not supported by this server yet", str(cm.exception))
            self.assertNotIn("tok", str(cm.exception))


class ComputeServerTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.ws = _harness.workspace()

    def test_not_found(self):
        with self.assertRaises(ComputeTargetException) as cm:
            ComputeTarget(workspace=self.ws, name="nope")
        self.assertIn("ComputeTargetNotFound: Compute Target with name nope not found in provided workspace",
                      str(cm.exception))

    def test_reserved(self):
        for n in ("local", "amlcompute", "containerinstance"):
            with self.assertRaises(UserErrorException) as cm:
                ComputeTarget.create(self.ws, n, prov())
            self.assertIn("Please specify a different target name. {} is a reserved name.".format(n),
                          str(cm.exception))

    def test_server_4xx_carries_field(self):
        with self.assertRaises(ComputeTargetException) as cm:
            ComputeTarget.create(self.ws, _harness.unique("bad"), prov(vm_size="NO_SUCH_SIZE"))
        e = cm.exception
        self.assertEqual(e.status_code, 400)
        self.assertEqual(e.field, "vm_size")
        self.assertIn("NO_SUCH_SIZE", str(e))
        with self.assertRaises(ComputeTargetException) as cm:
            ComputeTarget.create(self.ws, "x" * 40, prov())
        self.assertEqual(cm.exception.field, "name")

    def test_create_unsupported_settings(self):
        with self.assertRaises(ComputeTargetException) as cm:
            ComputeTarget.create(self.ws, _harness.unique("id"), prov(identity_type="SystemAssigned"))
        self.assertIn("not supported by this server yet", str(cm.exception))
        with self.assertRaises(ComputeTargetException) as cm:
            ComputeTarget.attach(self.ws, "vm", object())
        self.assertIn("not supported by this server yet", str(cm.exception))

    def test_local_is_generic(self):
        local = ComputeTarget(workspace=self.ws, name="local")
        self.assertIs(type(local), ComputeTarget)
        self.assertEqual(local.get_status(), "Succeeded")
        with self.assertRaises(ComputeTargetException):
            local.delete()
        with self.assertRaises(ComputeTargetException):
            AmlCompute(self.ws, "local")

    def test_cluster_lifecycle(self):
        name = _harness.unique("cpu")
        ct = ComputeTarget.create(self.ws, name, prov(min_nodes=0, max_nodes=2, idle_seconds_before_scaledown=60,
                                                      tags={"team": "a"}, description="d"))
        self.assertIsInstance(ct, AmlCompute)
        out = io.StringIO()
        with redirect_stdout(out):
            ct.wait_for_completion(show_output=True)
        self.assertIn("Minimum number of nodes requested have been provisioned", out.getvalue())
        self.assertEqual(ct.provisioning_state, "Succeeded")
        self.assertFalse(ct.provisioning_errors)
        again = ComputeTarget(workspace=self.ws, name=name)
        self.assertIsInstance(again, AmlCompute)
        self.assertEqual((again.vm_size, again.scale_settings.maximum_node_count, again.tags),
                         ("STANDARD_D2_V2", 2, {"team": "a"}))
        self.assertIsInstance(AmlCompute(self.ws, name), AmlCompute)
        self.assertIn(name, self.ws.compute_targets)
        self.assertTrue(any(c.name == name for c in ComputeTarget.list(self.ws)))

        st = ct.get_status()
        self.assertIn(st.allocation_state, ("Steady", "Resizing"))
        self.assertEqual(st.node_state_counts.idle_node_count, 0)
        self.assertEqual(st.current_node_count, 0)

        # Scale up to one node and wait for it.
        ct.update(min_nodes=1)
        self.assertEqual(ct.scale_settings.minimum_node_count, 1)
        self.assertEqual(ct.scale_settings.maximum_node_count, 2)
        out = io.StringIO()
        with redirect_stdout(out):
            ct.wait_for_completion(show_output=True, timeout_in_minutes=2)
        self.assertIn("out of 1 nodes ready", out.getvalue())
        self.assertIn("Minimum number of nodes requested have been provisioned", out.getvalue())
        nodes = ct.list_nodes()
        self.assertEqual(len(nodes), 1)
        self.assertEqual(set(nodes[0]) >= {"nodeId", "nodeState", "runId", "privateIpAddress", "port"}, True)
        self.assertEqual(ct.get_status().node_state_counts.idle_node_count, 1)
        self.assertEqual(list(ct.get_active_runs()), [])

        # A timeout prints and returns.
        out = io.StringIO()
        with redirect_stdout(out):
            ct.wait_for_completion(show_output=True, min_node_count=5, timeout_in_minutes=0.02)
        self.assertIn("Wait timeout has been reached", out.getvalue())

        ct.update()  # no-op
        with self.assertRaises(ComputeTargetException) as cm:
            ct.update(min_nodes=5)
        self.assertEqual(cm.exception.status_code, 400)
        self.assertTrue(cm.exception.field)

        with self.assertRaises(ComputeTargetException) as cm:
            ct.detach()
        self.assertEqual(str(cm.exception), "Detach is not supported for AmlCompute object. Try to use delete instead.")
        for call in (lambda: ct.add_identity("SystemAssigned"), lambda: ct.remove_identity()):
            with self.assertRaises(ComputeTargetException) as cm:
                call()
            self.assertIn("not supported by this server yet", str(cm.exception))

        d = ct.serialize()
        self.assertEqual(d["name"], name)
        self.assertEqual(d["properties"]["computeType"], "AmlCompute")
        self.assertEqual(d["properties"]["properties"]["scaleSettings"]["maxNodeCount"], 2)
        self.assertEqual(d["properties"]["properties"]["scaleSettings"]["nodeIdleTimeBeforeScaleDown"], "PT60S")

        ct.delete()
        self.assertEqual(ct.provisioning_state, "Deleting")
        ct.wait_for_completion(is_delete_operation=True)
        with self.assertRaises(ComputeTargetException):
            ComputeTarget(self.ws, name)

    def test_vmsizes_and_quotas(self):
        sizes = AmlCompute.supported_vmsizes(self.ws)
        names = [s["name"] for s in sizes]
        self.assertIn("STANDARD_D2_V2", names)
        self.assertTrue(all({"vCPUs", "memoryGB", "gpus"} <= set(s) for s in sizes))
        quotas = AmlCompute.list_quotas(self.ws)
        self.assertTrue(quotas)
        fam = quotas[0]["name"]
        out = io.StringIO()
        with redirect_stdout(out):
            AmlCompute.update_quotas(self.ws, fam, limit=500)
        self.assertIn("Updated quota", out.getvalue())
        self.assertTrue(any(q["name"] == fam and q["limit"] == 500 for q in AmlCompute.list_quotas(self.ws)))
        self.assertIsInstance(AmlCompute.list_usages(self.ws, show_all=True), list)
        with self.assertRaises(ComputeTargetException) as cm:
            AmlCompute.update_quotas(self.ws, "nofamily", limit=1)
        self.assertEqual(cm.exception.field, "family")
        with self.assertRaises(ComputeTargetException):
            AmlCompute.update_quotas(self.ws, fam)


if __name__ == "__main__":
    unittest.main()
