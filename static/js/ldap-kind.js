// LDAP page: choosing the directory type fills that type's defaults into every field still holding the previous
// type's default (or empty); fields the admin changed are left alone. The server applies the same rule on save
// (LdapDirectoryForm._fill_kind_defaults), so this only shows it before saving.
(function () {
  "use strict";
  var data = document.getElementById("ldap-kind-defaults");
  var select = document.getElementById("id_kind");
  if (!data || !select) return;
  var defaults = JSON.parse(data.dataset.defaults);
  var previous = select.value;
  select.addEventListener("change", function () {
    var before = defaults[previous] || {};
    var after = defaults[select.value] || {};
    Object.keys(after).forEach(function (name) {
      var field = document.getElementById("id_" + name);
      if (!field) return;
      if (field.value.trim() === "" || field.value === before[name]) field.value = after[name];
    });
    previous = select.value;
  });
})();
