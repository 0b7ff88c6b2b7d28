"""AmlCompute: an autoscaling cluster of nodes (a Hangar "cluster" compute)."""

import time

from ...exceptions import ComputeTargetException, not_supported
from .compute import (ComputeTarget, ComputeTargetProvisioningConfiguration, _call, _parse_time,
                      _quote, _register)

_SPECIAL = set("`~!@#$%^&*()=+_[]{}|;:./'\",<>?")


class ScaleSettings:
    """A cluster's autoscale bounds."""

    def __init__(self, minimum_node_count, maximum_node_count, idle_seconds_before_scaledown):
        self.minimum_node_count = minimum_node_count
        self.maximum_node_count = maximum_node_count
        self.idle_seconds_before_scaledown = idle_seconds_before_scaledown

    def serialize(self):
        return {"minNodeCount": self.minimum_node_count, "maxNodeCount": self.maximum_node_count,
                "nodeIdleTimeBeforeScaleDown": "PT{}S".format(self.idle_seconds_before_scaledown)
                if self.idle_seconds_before_scaledown is not None else ""}

    def __repr__(self):
        return "ScaleSettings(minimum_node_count={}, maximum_node_count={}, idle_seconds_before_scaledown={})".format(
            self.minimum_node_count, self.maximum_node_count, self.idle_seconds_before_scaledown)


class AmlComputeNodeStateCounts:
    """Nodes of a cluster by state."""

    def __init__(self, idle_node_count=0, leaving_node_count=0, preempted_node_count=0,
                 preparing_node_count=0, running_node_count=0, unusable_node_count=0):
        self.idle_node_count = idle_node_count
        self.leaving_node_count = leaving_node_count
        self.preempted_node_count = preempted_node_count
        self.preparing_node_count = preparing_node_count
        self.running_node_count = running_node_count
        self.unusable_node_count = unusable_node_count

    def serialize(self):
        return {"idleNodeCount": self.idle_node_count, "leavingNodeCount": self.leaving_node_count,
                "preemptedNodeCount": self.preempted_node_count, "preparingNodeCount": self.preparing_node_count,
                "runningNodeCount": self.running_node_count, "unusableNodeCount": self.unusable_node_count}

    def __repr__(self):
        return "AmlComputeNodeStateCounts({})".format(self.serialize())


class AmlComputeStatus:
    """A cluster's observed state, as get_status() returns it."""

    def __init__(self, allocation_state, allocation_state_transition_time, creation_time, current_node_count,
                 errors, modified_time, node_state_counts, provisioning_state,
                 provisioning_state_transition_time, scale_settings, target_node_count, vm_priority, vm_size):
        self.allocation_state = allocation_state
        self.allocation_state_transition_time = allocation_state_transition_time
        self.creation_time = creation_time
        self.current_node_count = current_node_count
        self.errors = errors
        self.modified_time = modified_time
        self.node_state_counts = node_state_counts
        self.provisioning_state = provisioning_state
        self.provisioning_state_transition_time = provisioning_state_transition_time
        self.scale_settings = scale_settings
        self.target_node_count = target_node_count
        self.vm_priority = vm_priority
        self.vm_size = vm_size

    def serialize(self):
        return {
            "allocationState": self.allocation_state,
            "allocationStateTransitionTime": None,
            "creationTime": self.creation_time.isoformat() if self.creation_time else None,
            "currentNodeCount": self.current_node_count,
            "errors": self.errors,
            "modifiedTime": self.modified_time.isoformat() if self.modified_time else None,
            "nodeStateCounts": self.node_state_counts.serialize(),
            "provisioningState": self.provisioning_state,
            "scaleSettings": self.scale_settings.serialize() if self.scale_settings else None,
            "targetNodeCount": self.target_node_count,
            "vmPriority": self.vm_priority,
            "vmSize": self.vm_size,
        }

    def __repr__(self):
        return "AmlComputeStatus({})".format(self.serialize())


class AmlComputeProvisioningConfiguration(ComputeTargetProvisioningConfiguration):
    """Settings of a new cluster; made by AmlCompute.provisioning_configuration."""

    def __init__(self, vm_size='', vm_priority="dedicated", min_nodes=0, max_nodes=None,
                 idle_seconds_before_scaledown=None, admin_username=None, admin_user_password=None,
                 admin_user_ssh_key=None, vnet_resourcegroup_name=None, vnet_name=None, subnet_name=None,
                 tags=None, description=None, remote_login_port_public_access="NotSpecified",
                 identity_type=None, identity_id=None, location=None, enable_node_public_ip=True):
        super().__init__(AmlCompute, location)
        self.vm_size = vm_size
        self.vm_priority = vm_priority
        self.scale_settings = ScaleSettings(min_nodes, max_nodes, idle_seconds_before_scaledown)
        self.admin_username = admin_username
        self.admin_user_password = admin_user_password
        self.admin_user_ssh_key = admin_user_ssh_key
        self.vnet_resourcegroup_name = vnet_resourcegroup_name
        self.vnet_name = vnet_name
        self.subnet_name = subnet_name
        self.tags = tags
        self.description = description
        self.remote_login_port_public_access = remote_login_port_public_access
        self.identity_type = identity_type
        self.identity_id = identity_id
        self.enable_node_public_ip = enable_node_public_ip

    _target_class = None  # set below

    def __repr__(self):
        # Secrets are never shown.
        return ("AmlComputeProvisioningConfiguration(vm_size={!r}, vm_priority={!r}, min_nodes={}, max_nodes={}, "
                "idle_seconds_before_scaledown={}, admin_username={!r}, admin_user_password={}, "
                "admin_user_ssh_key={})").format(
            self.vm_size, self.vm_priority, self.scale_settings.minimum_node_count,
            self.scale_settings.maximum_node_count, self.scale_settings.idle_seconds_before_scaledown,
            self.admin_username, "'***'" if self.admin_user_password else None,
            "'***'" if self.admin_user_ssh_key else None)

    def validate_configuration(self):
        """Checks the configuration as azureml does; raises ComputeTargetException."""
        if (self.admin_user_password or self.admin_user_ssh_key) and not self.admin_username:
            raise ComputeTargetException("Invalid user credentials, admin username must be provided along with "
                                         "either a password or SSH key information.")
        if self.admin_username and not self.admin_user_password and not self.admin_user_ssh_key:
            raise ComputeTargetException("Invalid user credentials, admin username provided but no password or "
                                         "key information provided.")
        if self.admin_user_password:
            pw = self.admin_user_password
            classes = sum([any(c.islower() for c in pw), any(c.isupper() for c in pw),
                           any(c.isdigit() for c in pw), any(c in _SPECIAL for c in pw)])
            if classes < 3:
                raise ComputeTargetException(
                    "Invalid admin user password provided. The admin user password must have 3 of the following: "
                    "1 lower case character, 1 upper case character, 1 number, and 1 special character from this "
                    "list ` ~ ! @ # $ % ^ & * ( ) = + _ [ ] { } | ; : . / ' \" , < > ?")
        vnet = [self.vnet_resourcegroup_name, self.vnet_name, self.subnet_name]
        if any(vnet) and not all(vnet):
            raise ComputeTargetException("Invalid configuration, not all virtual net information provided. To use a "
                                         "custom virtual net, please provide vnet name, vnet resource group and "
                                         "subnet name")
        ss = self.scale_settings
        if ss.maximum_node_count is None:
            raise ComputeTargetException("Invalid provisioning configuration, max nodes count is mandatory")
        if ss.maximum_node_count < 0:
            raise ComputeTargetException("Invalid provisioning configuration, max nodes count must be greater than "
                                         "or equal to 0")
        if ss.minimum_node_count is not None and ss.minimum_node_count < 0:
            raise ComputeTargetException("Invalid provisioning configuration, min nodes count must be greater than "
                                         "or equal to 0")
        if ss.maximum_node_count < (ss.minimum_node_count or 0):
            raise ComputeTargetException("Invalid provisioning configuration, max nodes count must be greater than "
                                         "or equal to min nodes count")
        if self.vm_priority not in ("dedicated", "lowpriority"):
            raise ComputeTargetException("Invalid configuration, vm_priority must be 'dedicated' or 'lowpriority'.")
        if self.identity_type is not None and self.identity_type not in ("UserAssigned", "SystemAssigned"):
            raise ComputeTargetException("Invalid configuration, identity_type must be set to 'UserAssigned' or "
                                         "'SystemAssigned'.")
        if self.identity_type == "UserAssigned" and (not isinstance(self.identity_id, list) or not self.identity_id):
            raise ComputeTargetException("Invalid configuration, identity type is user assigned, please pass the "
                                         "identity_id of the user assigned identity as a list.")
        if self.identity_id is not None and self.identity_type != "UserAssigned":
            raise ComputeTargetException("Invalid configuration, identity_id cannot be set when identity type is not "
                                         "user assigned.")

    def _unsupported(self):
        """The first setting this server cannot honour yet, or None."""
        if self.admin_username:
            return "Admin credentials for cluster nodes (admin_username)"
        if self.vnet_name:
            return "Virtual networks (vnet_name, subnet_name)"
        if self.identity_type:
            return "Managed identities (identity_type)"
        if self.location:
            return "A compute location other than the workspace's (location)"
        if self.remote_login_port_public_access not in (None, "NotSpecified"):
            return "remote_login_port_public_access"
        return None


class AmlCompute(ComputeTarget):
    """A compute cluster: min..max nodes that scale with queued runs."""

    _compute_type = "AmlCompute"

    def _load(self, workspace, doc):
        super()._load(workspace, doc)
        p = doc.get("properties") or {}
        ss = p.get("scale_settings") or {}
        self.vm_size = p.get("vm_size")
        self.vm_priority = p.get("vm_priority")
        self.scale_settings = ScaleSettings(ss.get("min_nodes", 0), ss.get("max_nodes"),
                                            ss.get("idle_seconds_before_scaledown"))
        self.admin_username = None
        self.admin_user_password = None
        self.admin_user_ssh_key = None
        self.vnet_resourcegroup_name = None
        self.vnet_name = None
        self.subnet_name = None
        self.remote_login_port_public_access = "NotSpecified"
        self.identity_type = None
        self.identity_id = None
        self.status = self._status_from(doc)

    def _status_from(self, doc):
        st = doc.get("status")
        if not st:
            return None
        c = st.get("node_state_counts") or {}
        counts = AmlComputeNodeStateCounts(
            idle_node_count=c.get("idle", 0), leaving_node_count=c.get("leaving", 0),
            preempted_node_count=c.get("preempted", 0), preparing_node_count=c.get("preparing", 0),
            running_node_count=c.get("running", 0), unusable_node_count=c.get("unusable", 0))
        alloc = (st.get("allocation_state") or "steady").lower()
        return AmlComputeStatus(
            allocation_state="Resizing" if alloc == "resizing" else "Steady",
            allocation_state_transition_time=None,
            creation_time=self.created_on, current_node_count=st.get("current_node_count", 0),
            errors=self.provisioning_errors, modified_time=self.modified_on, node_state_counts=counts,
            provisioning_state=self.provisioning_state, provisioning_state_transition_time=None,
            scale_settings=self.scale_settings, target_node_count=st.get("target_node_count", 0),
            vm_priority=self.vm_priority, vm_size=self.vm_size)

    @staticmethod
    def provisioning_configuration(vm_size='', vm_priority="dedicated", min_nodes=0, max_nodes=None,
                                   idle_seconds_before_scaledown=1800, admin_username=None,
                                   admin_user_password=None, admin_user_ssh_key=None,
                                   vnet_resourcegroup_name=None, vnet_name=None, subnet_name=None, tags=None,
                                   description=None, remote_login_port_public_access="NotSpecified",
                                   identity_type=None, identity_id=None, location=None,
                                   enable_node_public_ip=True):
        """The settings of a new cluster, with azureml's parameters and defaults."""
        config = AmlComputeProvisioningConfiguration(
            vm_size=vm_size, vm_priority=vm_priority, min_nodes=min_nodes or 0, max_nodes=max_nodes,
            idle_seconds_before_scaledown=idle_seconds_before_scaledown, admin_username=admin_username,
            admin_user_password=admin_user_password, admin_user_ssh_key=admin_user_ssh_key,
            vnet_resourcegroup_name=vnet_resourcegroup_name, vnet_name=vnet_name, subnet_name=subnet_name,
            tags=tags, description=description, remote_login_port_public_access=remote_login_port_public_access,
            identity_type=identity_type, identity_id=identity_id, location=location,
            enable_node_public_ip=enable_node_public_ip)
        config.validate_configuration()
        return config

    @staticmethod
    def _create(workspace, name, config):
        what = config._unsupported()
        if what:
            raise not_supported(what, ComputeTargetException)
        ss = config.scale_settings
        scale = {"min_nodes": ss.minimum_node_count or 0, "max_nodes": ss.maximum_node_count}
        if ss.idle_seconds_before_scaledown is not None:
            scale["idle_seconds_before_scaledown"] = ss.idle_seconds_before_scaledown
        props = {"vm_priority": config.vm_priority, "scale_settings": scale}
        if config.vm_size:
            props["vm_size"] = config.vm_size
        body = {"name": name, "type": "amlcompute", "properties": props}
        if config.description:
            body["description"] = config.description
        if config.tags:
            body["tags"] = {str(k): str(v) for k, v in config.tags.items()}
        doc = _call(workspace, "POST", "/computes", body=body)
        obj = object.__new__(AmlCompute)
        obj._load(workspace, doc)
        return obj

    def get_status(self):
        """The cluster's AmlComputeStatus, refreshed; None while it is created or after it failed."""
        self.refresh_state()
        if self.provisioning_state == "Creating":
            print("AmlCompute is getting created. Consider calling wait_for_completion() first\n")
            return None
        if self.provisioning_state == "Failed":
            print("AmlCompute is in a failed state, try deleting and recreating\n")
            return None
        return self.status

    def wait_for_completion(self, show_output=False, min_node_count=None, timeout_in_minutes=25,
                            is_delete_operation=False):
        """Waits until the cluster has min_node_count nodes ready (default its min_nodes).

        Stops at a failure or provisioning errors, and after timeout_in_minutes
        (printing "Wait timeout has been reached", without raising).
        """
        if is_delete_operation:
            return super().wait_for_completion(show_output, True)
        if min_node_count is None:
            min_node_count = self.scale_settings.minimum_node_count or 0
        deadline = time.monotonic() + timeout_in_minutes * 60
        last = None
        while True:
            self.refresh_state()
            st = self.status
            ready = 0
            if st:
                c = st.node_state_counts
                ready = c.idle_node_count + c.running_node_count
            line = (self.provisioning_state, st.allocation_state if st else None, ready)
            if show_output and line != last:
                print("{}: {} - Waiting for cluster to scale. {} out of {} nodes ready.".format(
                    self.provisioning_state, line[1] or "", ready, min_node_count), flush=True)
            last = line
            if self.provisioning_state in ("Failed", "Canceled"):
                if show_output:
                    print("AmlCompute wait for completion finished\nProvisioning state: {}".format(self.provisioning_state))
                raise ComputeTargetException(
                    "Compute object provisioning polling reached non-successful terminal state, current "
                    "provisioning state: {}\nProvisioning errors: {}".format(self.provisioning_state,
                                                                           self.provisioning_errors))
            if self.provisioning_errors:
                if show_output:
                    print("AmlCompute wait for completion finished\nThere were errors: {}".format(self.provisioning_errors))
                return
            if self.provisioning_state == "Succeeded" and ready >= min_node_count:
                if show_output:
                    print("AmlCompute wait for completion finished\n\nMinimum number of nodes requested have been "
                          "provisioned", flush=True)
                return
            if time.monotonic() > deadline:
                if show_output:
                    print("AmlCompute wait for completion finished\n\nWait timeout has been reached", flush=True)
                    print("Current provisioning state of AmlCompute is \"{}\"".format(self.provisioning_state))
                return
            time.sleep(1.0)

    def update(self, min_nodes=None, max_nodes=None, idle_seconds_before_scaledown=None):
        """Changes the scale settings; None keeps a value, all None does nothing."""
        if min_nodes is None and max_nodes is None and idle_seconds_before_scaledown is None:
            return
        scale = {}
        if min_nodes is not None:
            scale["min_nodes"] = min_nodes
        if max_nodes is not None:
            scale["max_nodes"] = max_nodes
        if idle_seconds_before_scaledown is not None:
            scale["idle_seconds_before_scaledown"] = idle_seconds_before_scaledown
        doc = _call(self.workspace, "PATCH", "/computes/" + _quote(self.name), body={"scale_settings": scale})
        self._load(self.workspace, doc)

    def list_nodes(self):
        """The cluster's nodes as azureml's dicts (nodeId, nodeState, runId …)."""
        nodes = _call(self.workspace, "GET", "/computes/{}/nodes".format(_quote(self.name))).get("value") or []
        out = []
        for n in nodes:
            runs = n.get("run_ids") or []
            out.append({"nodeId": n.get("id"), "privateIpAddress": "127.0.0.1", "publicIpAddress": None,
                        "port": None, "nodeState": n.get("state"), "runId": runs[0] if runs else None,
                        "vmSize": n.get("vm_size"), "vmPriority": n.get("vm_priority")})
        return out

    def get_active_runs(self, type=None, tags=None, properties=None, status=None):
        """The cluster's queued and running runs (a generator of Run)."""
        if properties is not None:
            raise not_supported("Filtering runs by properties", ComputeTargetException)
        if status is not None and status not in ("Running", "Queued"):
            raise ComputeTargetException("status must be 'Running' or 'Queued'")
        from ..run import Run
        statuses = status or "Queued,Provisioning,Preparing,Running,Finalizing,CancelRequested"
        docs = _call(self.workspace, "GET", "/runs", query={"compute": self.name, "status": statuses}).get("value") or []
        for d in docs:
            if tags and not _tags_match(d.get("tags") or {}, tags):
                continue
            yield Run._from_doc(self.workspace, d)

    @staticmethod
    def supported_vmsizes(workspace, location=None):
        """The VM size catalog: dicts with name, vCPUs, gpus, memoryGB, family and prices."""
        sizes = _call(workspace, "GET", "/vm-sizes", ws=False).get("value") or []
        return [{"name": s["name"], "vCPUs": s["vcpus"], "gpus": s.get("gpus", 0), "memoryGB": s["memory_gb"],
                 "family": s["family"], "pricePerHour": s.get("price_per_hour"),
                 "lowPriorityPricePerHour": s.get("low_priority_price_per_hour")} for s in sizes]

    @staticmethod
    def list_usages(workspace, show_all=False, location=None):
        """vCPUs in use against each family's quota."""
        out = []
        for q in _call(workspace, "GET", "/quotas").get("value") or []:
            if not show_all and not q.get("vcpus_used"):
                continue
            out.append({"name": {"value": q["family"], "localizedValue": q["family"]}, "vmPriority": q.get("vm_priority"),
                        "currentValue": q.get("vcpus_used", 0), "limit": q.get("vcpus_limit"), "unit": "Count"})
        return out

    @staticmethod
    def list_quotas(workspace, location=None):
        """The workspace's vCPU quotas per VM family and priority."""
        return [{"name": q["family"], "vmPriority": q.get("vm_priority"), "limit": q.get("vcpus_limit"),
                 "currentValue": q.get("vcpus_used", 0), "unit": "Count"}
                for q in _call(workspace, "GET", "/quotas").get("value") or []]

    @staticmethod
    def update_quotas(workspace, vm_family, limit=None, location=None, vm_priority="dedicated"):
        """Sets the vCPU quota of vm_family; prints "Updated quota"."""
        if limit is None:
            raise ComputeTargetException("limit is required: the vCPU limit of the family", field="limit")
        doc = _call(workspace, "PUT", "/quotas", body={"family": vm_family, "vm_priority": vm_priority,
                                                        "vcpus_limit": limit})
        print("Updated quota")
        return doc

    def add_identity(self, identity_type, identity_id=None):
        raise not_supported("Managed identities (add_identity)", ComputeTargetException)

    def remove_identity(self, identity_id=None):
        raise not_supported("Managed identities (remove_identity)", ComputeTargetException)

    def detach(self):
        raise ComputeTargetException("Detach is not supported for AmlCompute object. Try to use delete instead.")

    def serialize(self):
        d = super().serialize()
        d["properties"]["properties"] = {
            "vmSize": self.vm_size,
            "vmPriority": self.vm_priority,
            "scaleSettings": self.scale_settings.serialize(),
            "userAccountCredentials": None,
            "subnet": None,
            "remoteLoginPortPublicAccess": self.remote_login_port_public_access,
            "allocationState": self.status.allocation_state if self.status else None,
            "currentNodeCount": self.status.current_node_count if self.status else None,
            "targetNodeCount": self.status.target_node_count if self.status else None,
            "nodeStateCounts": self.status.node_state_counts.serialize() if self.status else None,
        }
        d["properties"]["status"] = self.status.serialize() if self.status else None
        return d


def _tags_match(have, want):
    if isinstance(want, str):
        return want in have
    if isinstance(want, dict):
        return all(have.get(k) == v for k, v in want.items())
    return all(_tags_match(have, w) for w in want)


AmlComputeProvisioningConfiguration._target_class = AmlCompute
_register(AmlCompute, "cluster", "amlcompute")
